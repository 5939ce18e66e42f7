# Test infrastructure for BoxLite integration tests: images, registries, fixtures.
