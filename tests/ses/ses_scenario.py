"""What the SES tests share: the instant that stands for "now" on their generated data."""

from datetime import datetime

AS_OF = datetime(2026, 11, 20, 6, 0, 0)
