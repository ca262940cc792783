"""Tests of the functions in functions/, each through its real trigger."""
