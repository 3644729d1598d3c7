/** Hard limits on anything decoded from the network (invariant 9). */
export const Limits = {
  /** One WebRTC data-channel message (a frame). werift enforces 64 KiB max-message-size. */
  maxFrameBytes: 64 * 1024,
  /**
   * Target frame size when coalescing messages: ten of werift's 1,200-byte SCTP chunks,
   * so a full frame never spills a nearly empty eleventh packet.
   */
  targetFrameBytes: 12_000,
  /** Messages in one frame. */
  maxBatchLength: 4096,
  /** One logical message after reassembly of chunks. */
  maxMessageBytes: 8 * 1024 * 1024,
  /** Strings inside a message (ids, names, SDP). */
  maxStringLength: 64 * 1024,
  /** Byte strings inside a message (values, chunks). */
  maxBytesLength: 8 * 1024 * 1024,
  /** Bytes queued for one peer before sends are refused. */
  maxQueuedBytesPerPeer: 16 * 1024 * 1024,
  /** Chunked messages being reassembled per peer. */
  maxPartialMessagesPerPeer: 16,
} as const;
