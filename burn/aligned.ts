// The project compiles without lib.dom (ES2023 and Node.js types), where WebAssembly is declared
// as a value; the one constructor used is declared here. Node.js has it as a global.
declare const WebAssembly: { Memory: new (descriptor: { initial: number; maximum?: number }) => { readonly buffer: ArrayBuffer } };

/** WebAssembly's page: the unit `WebAssembly.Memory` grows by, 64 KiB. */
const WASM_PAGE = 65_536;

/**
 * `count` buffers of `size` bytes each whose addresses are page-aligned, as O_DIRECT wants.
 *
 * Node.js has no way to ask for aligned memory: a Buffer's bytes come from malloc (or a slice of
 * an 8 KiB pool), typically 16 bytes past a page boundary, and the kernel refuses O_DIRECT with
 * EINVAL unless the address is a multiple of the device's DMA alignment (511 for a loop device,
 * often 4095 elsewhere). Measured on a loop device: a 4 MiB `Buffer.allocUnsafe` fails, a
 * subarray at offset 16 fails. A `WebAssembly.Memory`'s backing store, on the other hand, is
 * one mmap'd region (V8 reserves it with guard pages, so it starts on a page boundary by
 * construction), and every view at a multiple of 4096 bytes into it is page-aligned too. The
 * buffers are Buffer views on that one region: no copy, and node:fs and node:crypto take them
 * as they are.
 *
 * `size` must be a positive multiple of 4096 (a page, and a multiple of every logical sector
 * size there is), so that each buffer starts page-aligned. Throws RangeError otherwise, or when
 * the total exceeds what a WebAssembly memory may hold (4 GiB).
 */
export function alignedBuffers(count: number, size: number): Buffer[] {
  if (!Number.isSafeInteger(size) || size <= 0 || size % 4096 !== 0) throw new RangeError(`aligned buffers must be a positive multiple of 4096 bytes, not ${size}`);
  if (!Number.isSafeInteger(count) || count <= 0) throw new RangeError(`aligned buffers: count must be positive, not ${count}`);
  const pages = Math.ceil((count * size) / WASM_PAGE);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  return Array.from({ length: count }, (_, i) => Buffer.from(memory.buffer, i * size, size));
}
