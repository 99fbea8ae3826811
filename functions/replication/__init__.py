"""Engine shared by the forwarder and the replicator: wire format, versions, conflict rules, AWS writers."""
