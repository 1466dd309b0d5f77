"""trailguard: an AWS-native CloudTrail foundation with real-time detection and safe remediation."""

from __future__ import annotations

__version__ = "0.1.0"
