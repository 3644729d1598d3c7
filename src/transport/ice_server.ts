/** A STUN or TURN server WebRTC may use (the `iceServers` entry of RTCConfiguration). */
export interface IceServer {
  urls: string;
  username?: string;
  credential?: string;
}
