"""`omnigraph caption`: caption many audio and video files, one run of a captioning graph per window of audio,
locally or on Ray Data, into one resumable JSONL or Parquet file of records."""
