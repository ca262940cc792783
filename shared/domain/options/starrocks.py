"""Fleet options of TaurusDB StarRocks targets (``targets[].starrocks``).

A StarRocks target has two ids (vendor-facts §4.1): ``instance_id``, the TaurusDB instance it
belongs to (suffix ``in07``), and ``starrocks_instance_id``, the StarRocks instance (suffix
``in17``). Which one goes where:

* ``POST /v3/{p}/instances/{id}/starrocks/db-upgrade`` (UpgradeSrKernelVersion) — the StarRocks
  id: the API page (seed 000: "StarRocks instance ID … 36 characters with a suffix of in17") and
  PySDK ``upgrade_sr_kernel_version_request.py``. TF-HW's
  ``resource_huaweicloud_taurusdb_htap_starrocks_instance_upgrade.go`` (d85ae70) sends the
  TaurusDB id instead, so ``upgrade_path_id`` can say ``taurusdb``; the default follows the page.
* ``GET /v3/{p}/instances/{in07}/starrocks/{in17}`` (ListStarrocksInstanceInfo,
  api-taurusdb/ListStarrocksInstanceInfo.html) — the TaurusDB id, then the StarRocks id.

The suffixes are enforced (:meth:`StarRocksOptions.check_target`): both pages state them as the
ids' form, not as an example, and a swapped pair is the mistake that reaches the vendor as
``DBS.200022 Instance not found``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["STARROCKS_ID", "TAURUSDB_ID", "StarRocksOptions"]

#: "36 characters with a suffix of in17. Only letters and digits are allowed." (seed 000)
STARROCKS_ID = r"^[0-9A-Za-z]{32}in17$"
#: The TaurusDB (GaussDB for MySQL) instance id: 32 letters/digits and ``in07``
#: (ListStarrocksInstanceInfo, ListHtapInstanceInfo).
TAURUSDB_ID = r"^[0-9A-Za-z]{32}in07$"


class StarRocksOptions(BaseModel):
    """Options of one TaurusDB StarRocks target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Which id the db-upgrade path takes: ``starrocks`` (in17; the API page and PySDK) or
    #: ``taurusdb`` (in07; what TF-HW sends).
    upgrade_path_id: Literal["starrocks", "taurusdb"] = "starrocks"
    #: db-upgrade's ``delay``: "Whether to delay the upgrade" (seed 000). For the TaurusDB kernel
    #: upgrade ``true`` runs it in the instance's maintenance window (PySDK
    #: ``upgrade_database_request.py``); for StarRocks that is unconfirmed (vendor-facts §4.2).
    #: The job then waits as ``Pending``: expect it in the stage's durations or it is declared stuck.
    delay: bool = False
    #: db-upgrade's ``is_skip_validate``: "Whether to skip upgrade verification" (seed 000).
    is_skip_validate: bool = False

    def check_target(self, target: Any) -> None:
        """ValueError naming the field when ``target``'s ids are missing or malformed. Meant for
        fleet load (``Target`` validation); the stage calls it again before its call."""
        taurus = getattr(target, "instance_id", None)
        if taurus is None or not re.match(TAURUSDB_ID, taurus):
            raise ValueError(
                f"instance_id: {taurus!r} is not a TaurusDB instance id (32 letters or digits, then in07)"
            )
        starrocks = getattr(target, "starrocks_instance_id", None)
        if starrocks is None:
            raise ValueError(
                "starrocks_instance_id: a StarRocks target needs it (suffix in17): the instance query "
                "takes the TaurusDB id, then the StarRocks id"
            )
        if not re.match(STARROCKS_ID, starrocks):
            raise ValueError(
                f"starrocks_instance_id: {starrocks!r} is not a StarRocks instance id (32 letters or digits, then in17)"
            )

    def upgrade_id(self, target: Any) -> str:
        """The id the db-upgrade path takes, per ``upgrade_path_id``."""
        return str(
            target.starrocks_instance_id if self.upgrade_path_id == "starrocks" else target.instance_id
        )
