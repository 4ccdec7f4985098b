"""The run's feature extractor at work elsewhere: exported (`export`, `model`, `triton`) and served over HTTP
(`service`, with its `batcher` and safe `uploads`)."""
