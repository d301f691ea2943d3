"""The durable buffer between an accepted request and storage: a write-ahead log with
group commit (`wal`) and a background flusher that delivers it (`flusher`)."""
