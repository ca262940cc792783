"""Wire models of the Huawei Cloud APIs, one module per API: CCE and CCE Autopilot (``cce``) and
TaurusDB (``taurusdb``). Import them from their module; this package re-exports nothing."""

__all__: list[str] = []
