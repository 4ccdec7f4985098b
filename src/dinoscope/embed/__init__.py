"""Images -> embeddings: the backbones (timm), their input transform, and batched, resumable extraction."""
