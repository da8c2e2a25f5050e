/**
 * Pure readers of the module index files depmod writes (modules.dep, modules.alias,
 * modules.softdep, modules.builtin), and the closure of a set of modules over them.
 */

/** Module name as the kernel and modprobe spell it: basename, no .ko suffix, '-' as '_'. */
export function moduleName(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return base.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

/** modules.dep: "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko ...". */
export function parseModulesDep(text: string): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const rest = line.slice(colon + 1).trim();
    deps.set(path, rest ? rest.split(/\s+/) : []);
  }
  return deps;
}

export interface ModuleAlias {
  pattern: string;
  module: string;
}

/** modules.alias: "alias pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_net". */
export function parseModulesAlias(text: string): ModuleAlias[] {
  const out: ModuleAlias[] = [];
  for (const line of text.split('\n')) {
    const m = /^alias\s+(\S+)\s+(\S+)/.exec(line);
    if (m) out.push({ pattern: m[1]!, module: m[2]!.replace(/-/g, '_') });
  }
  return out;
}

/** modules.softdep: "softdep ext4 pre: crc32c" — dependencies loaded by name, not by symbol. */
export function parseModulesSoftdep(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^softdep\s+(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const names = m[2]!.split(/\s+/).filter((w) => w && !w.endsWith(':'));
    const key = m[1]!.replace(/-/g, '_');
    out.set(key, [...(out.get(key) ?? []), ...names.map((n) => n.replace(/-/g, '_'))]);
  }
  return out;
}

/** modules.builtin: one path per line; these need no file, modprobe treats them as loaded. */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .map(moduleName),
  );
}

/** Matches a modalias against an alias pattern with fnmatch semantics (*, ?, [...]). */
export function aliasMatches(pattern: string, alias: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, end).replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`).test(alias);
}

export interface ModuleIndex {
  /** Relative path (as in modules.dep) by module name. */
  pathByName: Map<string, string>;
  deps: Map<string, string[]>;
  softdeps: Map<string, string[]>;
  builtin: Set<string>;
}

export function buildModuleIndex(depText: string, softdepText = '', builtinText = ''): ModuleIndex {
  const deps = parseModulesDep(depText);
  const pathByName = new Map<string, string>();
  for (const path of deps.keys()) pathByName.set(moduleName(path), path);
  return { pathByName, deps, softdeps: parseModulesSoftdep(softdepText), builtin: parseModulesBuiltin(builtinText) };
}

export interface ModuleSelection {
  /** Relative paths of every module file to copy, sorted. */
  paths: string[];
  /** Requested names built into the kernel (nothing to copy). */
  builtin: string[];
  /** Requested names or directories that match nothing. */
  missing: string[];
}

/**
 * The modules.dep closure of the requested modules. A request is a module name ("virtio_net")
 * or a directory of the module tree ending in '/' ("kernel/drivers/net/ethernet/intel/");
 * soft dependencies (ext4 → crc32c) are followed too, since modprobe loads them.
 */
export function selectModules(index: ModuleIndex, requests: readonly string[]): ModuleSelection {
  const chosen = new Set<string>();
  const builtin: string[] = [];
  const missing: string[] = [];
  const addPath = (path: string, seen: Set<string>): void => {
    if (chosen.has(path)) return;
    chosen.add(path);
    for (const dep of index.deps.get(path) ?? []) addPath(dep, seen);
    for (const soft of index.softdeps.get(moduleName(path)) ?? []) {
      const p = index.pathByName.get(soft);
      if (p) addPath(p, seen);
    }
  };
  for (const request of requests) {
    if (request.endsWith('/')) {
      const matching = [...index.deps.keys()].filter((p) => p.startsWith(request));
      if (matching.length === 0) missing.push(request);
      for (const p of matching) addPath(p, new Set());
      continue;
    }
    const name = moduleName(request);
    const path = index.pathByName.get(name);
    if (path) addPath(path, new Set());
    else if (index.builtin.has(name)) builtin.push(name);
    else missing.push(request);
  }
  return { paths: [...chosen].sort(), builtin, missing };
}
