/**
 * Sets `key` to `value` in a map kept to at most `max` entries: the key moves to the newest place, and the entries
 * set longest ago make room. The caches and logs of the hub that must not grow with a fleet or an uptime use it.
 */
export function setBounded<K, V>(map: Map<K, V>, max: number, key: K, value: V): void {
  map.delete(key);
  while (map.size >= max && map.size > 0) map.delete(map.keys().next().value!);
  map.set(key, value);
}
