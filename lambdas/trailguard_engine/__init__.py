"""trailguard engine: the Lambda asset root.

Everything under this package must import fast (no pydantic, no moto) and run
on the Lambda Python runtime with only the pins in ``lambdas/requirements.txt``.
"""
