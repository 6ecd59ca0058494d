"""Checks and catalogue matching for bills structured into ``core.records.Claim``s.

- ``layout`` / ``structure``: a page's OCR lines → a ``Claim`` from geometry; ``invoice``: VAT invoices;
  ``document``: a file's pages → its claims, an itemised list over several pages joined into one.
- ``numerals``: amounts in Chinese financial numerals and in figures → ``Decimal``.
- ``checks``: the identities a bill proves about itself; failing ones mark fields ``needs_review``.
- ``repair``: single-character repairs accepted only when the checks prove them; ``verify_claim``.
- ``names`` / ``catalogue``: normalised item names, a bureau's catalogue, n-gram + rapidfuzz matching.
- ``restrictions``: the catalogue's restriction rules against what is known of patient and visit.
"""
