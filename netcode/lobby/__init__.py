"""See the package docs."""

__all__: list[str] = []
