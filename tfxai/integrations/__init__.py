"""Integrations with other engines; each module needs its own optional extra (``tfxai[beam]``)."""
