/** `sockopt` (CommonJS, untyped): getsockopt/setsockopt on a net.Socket's fd, int-valued. */
declare module 'sockopt' {
  import type { Socket, Server } from 'node:net';
  const sockopt: {
    getsockopt(socket: Socket | Server, level: number, option: number): number;
    setsockopt(socket: Socket | Server, level: number, option: number, value: number): void;
  };
  export default sockopt;
}
