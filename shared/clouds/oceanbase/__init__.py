"""OceanBase under OCP (OceanBase Cloud Platform): the OCP client (``client``) and its wire models (``models``)."""
