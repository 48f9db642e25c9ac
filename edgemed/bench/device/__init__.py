"""Device room: bundle, pack, the run on the device, grade; imports the other rooms and bench.stage, and only bench.cli imports it."""
