"""What the bureau knows, added to structured claims: its hospital register and its catalogue, each loaded from
the bureau's own file. One implementation for both drivers (``pipelines.bills`` and the API's uploads)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from core.records import Claim

from .catalogue import Catalogue
from .hospitals import HospitalRegister, apply_register
from .restrictions import match_claim, refresh_restrictions

__all__ = ["after_correction", "load_catalogue", "load_register", "with_bureau_data"]


def load_catalogue(path: str) -> Catalogue:
    return Catalogue.from_xlsx(path) if Path(path).suffix.lower() in (".xlsx", ".xlsm") else Catalogue.from_csv(path)


def load_register(path: str) -> HospitalRegister:
    return HospitalRegister.from_csv(path)


def after_correction(claim: Claim, changed: Iterable[str], catalogue: Catalogue | None = None,
                     register: HospitalRegister | None = None) -> Claim:
    """What the bureau's files say, again, after a clerk changed ``changed`` (field paths): a corrected hospital
    looked up in the register as typed (its code and level, or ``hospital.not_in_register``); a corrected header
    field (sex, age, hospital …) re-judges the catalogue's restrictions on the lines' current matches."""
    changed = set(changed)
    if register is not None and "header.hospital" in changed:
        claim = apply_register(claim, register, confirmed=True)
    if catalogue is not None and any(p.startswith("header.") for p in changed):
        claim = refresh_restrictions(claim, catalogue)
    return claim


def with_bureau_data(claims: list[Claim], catalogue: Catalogue | None = None,
                     register: HospitalRegister | None = None) -> list[Claim]:
    """The hospital from the register (code and level) first, since the catalogue's restriction rules read the
    level; then each line matched to the catalogue."""
    if register is not None:
        claims = [apply_register(c, register) for c in claims]
    if catalogue is not None:
        claims = [match_claim(c, catalogue) for c in claims]
    return claims
