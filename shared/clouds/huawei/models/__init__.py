"""Wire models of the Huawei Cloud APIs: CCE/CCE Autopilot (``cce``) and TaurusDB (``taurusdb``)."""
