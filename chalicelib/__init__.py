"""Everything that runs in Lambda. Modules here import heavy libraries lazily."""
