"""SplitVault test harness: real servers on loopback, started and stopped by the tests."""
