"""Device room: bundle, pack, the device run, grade; imports every room and bench.stage; only bench.cli imports it."""
