"""Statistical disclosure control: the safe view of a cube that every output reads."""

from lds_dask.sdc.margins import DisclosureError
from lds_dask.sdc.rules import DisclosureRules, apply_disclosure_control, safe_view

__all__ = ["DisclosureError", "DisclosureRules", "apply_disclosure_control", "safe_view"]
