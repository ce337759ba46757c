"""The contract between training and serving: front-end, audio decoding, model, artifact."""
