import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImagepeError } from '../core/index.js';
import { assertWimFile, type ImageSelector } from './wim.js';
import { wimlib } from './wimlib.js';

/**
 * Image properties as wimlib names them: element paths below <IMAGE>, "/"-separated
 * ("IMAGEPE/LAYOUT", "WINDOWS/VERSION/BUILD"); the second and later of same-named siblings get
 * a 1-based suffix ("LANGUAGES/LANGUAGE[2]"), as wimlib_get_image_property takes them.
 */
export type ImageProperties = Record<string, string>;

export interface WimXmlImage {
  index: number;
  properties: ImageProperties;
}

interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** The images of a WIM's XML data (as `wimlib-imagex info --extract-xml` writes it, decoded), each with its properties. */
export function parseWimXml(xml: string): WimXmlImage[] {
  const root = parseXml(xml);
  if (root.name !== 'WIM') throw new ImagepeError('WIM_CORRUPT', `the WIM's XML data starts with <${root.name}>, not <WIM>`);
  return root.children
    .filter((c) => c.name === 'IMAGE')
    .map((img) => ({ index: Number(img.attributes.INDEX), properties: flatten(img) }));
}

/** The properties of one image, by index or exact name, from the WIM's XML data. */
export function imagePropertiesFromXml(xml: string, image: ImageSelector, where = 'the WIM'): ImageProperties {
  const images = parseWimXml(xml);
  const byIndex = typeof image === 'number' || /^\d+$/.test(image);
  const found = images.find((i) => (byIndex ? i.index === Number(image) : i.properties.NAME === image));
  if (!found) {
    const list = images.map((i) => `${i.index} "${i.properties.NAME ?? ''}"`).join(', ') || 'none';
    throw new ImagepeError('IMAGE_NOT_FOUND', `${where} has no image ${byIndex ? `with index ${image}` : `named "${image}"`}; it holds: ${list}`, {
      hint: 'imagepe info WIM lists the images it holds.',
    });
  }
  return found.properties;
}

/** Reads every property of one image (NAME, DESCRIPTION, the counts, and any set with --image-property). */
export async function imageProperties(wimPath: string, image: ImageSelector, options: { signal?: AbortSignal } = {}): Promise<ImageProperties> {
  return imagePropertiesFromXml(await readWimXml(wimPath, options), image, wimPath);
}

/** One property of one image, or undefined when the image has none by that name. */
export async function imageProperty(wimPath: string, image: ImageSelector, name: string, options: { signal?: AbortSignal } = {}): Promise<string | undefined> {
  return (await imageProperties(wimPath, image, options))[name];
}

/**
 * The WIM's XML data as text. `info --xml` prints it as UTF-16LE, which the process runner
 * would decode as UTF-8, so it is extracted to a file and decoded here.
 */
export async function readWimXml(wimPath: string, options: { signal?: AbortSignal } = {}): Promise<string> {
  await assertWimFile(wimPath);
  const dir = await mkdtemp(join(tmpdir(), 'imagepe-xml-'));
  try {
    const file = join(dir, 'wim.xml');
    await wimlib(['info', wimPath, `--extract-xml=${file}`], { operation: 'info', what: `reading the XML data of ${wimPath}`, signal: options.signal, timeoutMs: 120_000 });
    return decodeXml(await readFile(file));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** WIM XML is UTF-16LE with a byte-order mark; a big-endian or UTF-8 one is read too. */
export function decodeXml(bytes: Buffer): string {
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be').decode(bytes);
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return new TextDecoder('utf-8').decode(bytes);
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes);
  // No mark: UTF-16LE puts a zero byte after "<".
  return new TextDecoder(bytes[1] === 0 ? 'utf-16le' : 'utf-8').decode(bytes);
}

function flatten(el: XmlElement, prefix = '', out: ImageProperties = {}): ImageProperties {
  const seen = new Map<string, number>();
  for (const child of el.children) {
    const n = (seen.get(child.name) ?? 0) + 1;
    seen.set(child.name, n);
    const key = `${prefix}${child.name}${n > 1 ? `[${n}]` : ''}`;
    if (child.children.length > 0) flatten(child, `${key}/`, out);
    else out[key] = child.text;
  }
  return out;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function unescapeXml(text: string, at: () => string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, ref: string) => {
    if (ref.startsWith('#x')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    const c = ENTITIES[ref];
    if (c === undefined) throw bad(`unknown entity ${whole}`, at());
    return c;
  });
}

function bad(what: string, where: string): ImagepeError {
  return new ImagepeError('WIM_CORRUPT', `the WIM's XML data cannot be read: ${what} ${where}`, { hint: 'imagepe verify WIM checks the file; wimlib-imagex info --xml shows the XML.' });
}

/**
 * A small XML reader for what WIM files hold: elements, attributes, text, entities, comments,
 * processing instructions and CDATA. No DTDs or namespaces: WIM XML has none.
 */
export function parseXml(xml: string): XmlElement {
  let i = xml.charCodeAt(0) === 0xfeff ? 1 : 0;
  const where = () => `at character ${i}`;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const textChunks = new Map<XmlElement, string[]>();
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    if (text.length > 0) {
      const top = stack[stack.length - 1];
      if (top) textChunks.get(top)!.push(unescapeXml(text, where));
      else if (text.trim()) throw bad('text outside the root element', where());
    }
    if (lt < 0) break;
    i = lt;
    if (xml.startsWith('<?', i)) {
      const end = xml.indexOf('?>', i);
      if (end < 0) throw bad('an unterminated processing instruction', where());
      i = end + 2;
    } else if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i);
      if (end < 0) throw bad('an unterminated comment', where());
      i = end + 3;
    } else if (xml.startsWith('<![CDATA[', i)) {
      const end = xml.indexOf(']]>', i);
      const top = stack[stack.length - 1];
      if (end < 0 || !top) throw bad('a stray CDATA section', where());
      textChunks.get(top)!.push(xml.slice(i + 9, end));
      i = end + 3;
    } else if (xml.startsWith('</', i)) {
      const end = xml.indexOf('>', i);
      const name = xml.slice(i + 2, end).trim();
      const top = stack.pop();
      if (end < 0 || !top || top.name !== name) throw bad(`a closing </${name}> that does not match`, where());
      top.text = textChunks.get(top)!.join('');
      textChunks.delete(top);
      i = end + 1;
    } else {
      const m = /^<([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(xml.slice(i, i + 4096));
      if (!m) throw bad('a malformed tag', where());
      const el: XmlElement = { name: m[1]!, attributes: {}, children: [], text: '' };
      for (const a of m[2]!.matchAll(/([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) el.attributes[a[1]!] = unescapeXml(a[2] ?? a[3] ?? '', where);
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) throw bad('a second root element', where());
      else root = el;
      i += m[0].length;
      if (m[3] !== '/') {
        stack.push(el);
        textChunks.set(el, []);
      }
    }
  }
  if (stack.length > 0) throw bad(`<${stack[stack.length - 1]!.name}> is not closed`, 'at the end');
  if (!root) throw bad('no root element', 'at the end');
  return root;
}
