"""Bugs this suite found outside formats/: reason strings for strict xfails. All fixed for now."""
