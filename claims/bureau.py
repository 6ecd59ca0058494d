"""What the bureau knows, added to structured claims: its hospital register and its catalogue, each loaded from
the bureau's own file. One implementation for both drivers (``pipelines.bills`` and the API's uploads)."""

from __future__ import annotations

from pathlib import Path

from core.records import Claim

from .catalogue import Catalogue
from .hospitals import HospitalRegister, apply_register
from .restrictions import match_claim

__all__ = ["load_catalogue", "load_register", "with_bureau_data"]


def load_catalogue(path: str) -> Catalogue:
    return Catalogue.from_xlsx(path) if Path(path).suffix.lower() in (".xlsx", ".xlsm") else Catalogue.from_csv(path)


def load_register(path: str) -> HospitalRegister:
    return HospitalRegister.from_csv(path)


def with_bureau_data(claims: list[Claim], catalogue: Catalogue | None = None,
                     register: HospitalRegister | None = None) -> list[Claim]:
    """The hospital from the register (code and level) first, since the catalogue's restriction rules read the
    level; then each line matched to the catalogue."""
    if register is not None:
        claims = [apply_register(c, register) for c in claims]
    if catalogue is not None:
        claims = [match_claim(c, catalogue) for c in claims]
    return claims
