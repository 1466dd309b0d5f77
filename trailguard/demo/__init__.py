"""The local end-to-end demo: the whole pipeline on an embedded AWS emulator, no AWS account.

``trailguard demo`` (``make demo``): synthesize the app, start moto on a free
local port, seed a sandbox account, run an attack scenario with real boto3
calls, route each CloudTrail event through the synthesized central-bus rules
into the engine handler, and verify every resource's live state.
"""
