"""The grant itself: the policy's rules per step, 回避, the parties' signatures as a step, and
what the application page shows."""
