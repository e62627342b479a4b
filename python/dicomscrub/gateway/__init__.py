"""The DICOM network side of dicomscrub (the ``gateway`` extra: pynetdicom).

- ``dicomscrub serve``: a Storage SCP that anonymizes every instance it receives, in memory,
  with the Rust core, and forwards it (C-STORE to a PACS, a folder through the atomic writer and
  journal of the bulk engine, or DICOMweb STOW-RS), with a durable on-disk queue when the
  destination is down (:mod:`dicomscrub.gateway.server`, :mod:`dicomscrub.gateway.spool`);
- ``dicomscrub send``: a C-STORE SCU that pushes a tree into a PACS over several associations,
  each file in its own transfer syntax (:mod:`dicomscrub.gateway.send`).

The commands are added to the CLI by :func:`dicomscrub.gateway.cli.register`; pynetdicom is only
imported when one of them runs, so the rest of dicomscrub works without the extra.
"""

from __future__ import annotations

from dicomscrub.gateway.address import Address, parse_address

__all__ = ["Address", "parse_address"]
