"""Retro-detection at organization scale: the catalog's patterns compiled to SQL, run on DuckDB, Athena or Lake.

Only candidate events come back from the engine; the matcher and the decision functions then run on them locally,
exactly as ``trailguard replay`` runs them (issue 18).
"""
