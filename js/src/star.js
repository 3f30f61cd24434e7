// Star host migration (PROTOCOL.md 1.6): what a session does with its peers when the
// lobby names a new host, as netcode/net/session.py's _on_host_changed. Pure: the
// Session (netcode.js) applies the plan to its links.

/**
 * @param {{me: string, host: string, previous: string | null,
 *          peers: Map<string, "live" | "ended" | "via">}} table
 *   ``peers``: each other member by how we reach it: a link still up or connecting
 *   ("live"), a link that ended (lost, failed) and is kept until the peer leaves
 *   ("ended"), or through the host ("via").
 * @returns {{retire: string[], toVia: string[], answer: string[], offerTo: string | null}}
 *   ``retire``: links to close quietly (the old host's: HostChanged says why);
 *   ``toVia``: ended links dropped, the peer now reached through the new host;
 *   ``answer``: we are the new host: a link per client, waiting for its offer;
 *   ``offerTo``: we are a client: a fresh link to the new host, offered by us.
 */
export function hostChangePlan({ me, host, previous, peers }) {
  const plan = { retire: [], toVia: [], answer: [], offerTo: null };
  if (previous !== me && peers.get(previous) === "live") plan.retire.push(previous);
  for (const [pid, kind] of peers) {
    if (pid === previous || pid === me) continue;
    if (host === me) {
      if (kind === "via") plan.answer.push(pid); // every client offers to its new hub
    } else if (pid === host) {
      plan.offerTo = pid; // clients offer: the new host answers each of them
    } else if (kind === "ended") {
      plan.toVia.push(pid); // a live link (we were the host) is kept until it ends
    }
  }
  return plan;
}

/** How a session reaches each member (the ``peers`` of hostChangePlan). */
export function peerKinds(links, viaHost) {
  const kinds = new Map();
  for (const [pid, link] of links) kinds.set(pid, link.ended ? "ended" : "live");
  for (const pid of viaHost) kinds.set(pid, "via");
  return kinds;
}
