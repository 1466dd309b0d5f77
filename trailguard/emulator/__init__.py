"""A local AWS for trailguard: moto's server with the fixes a real ``cdk deploy`` needs.

:mod:`trailguard.emulator.fixes` holds the named, tested fixes to moto (pinned exactly in
requirements.txt); :mod:`trailguard.emulator.server` starts the server; :mod:`trailguard.emulator.deploy`
bootstraps and deploys with the real CDK CLI; :mod:`trailguard.emulator.inspect` checks what was deployed.
"""
