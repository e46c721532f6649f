"""Everything that runs in Lambda. Modules here import heavy libraries lazily."""

__version__ = "0.1.0"
