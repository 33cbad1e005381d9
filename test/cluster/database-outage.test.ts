/**
 * Issue #15: what a replica does when PostgreSQL goes away and comes back. One replica reaches the database through
 * a TCP relay the test can cut (every connection reset, new ones refused); a second replica reaches it directly and
 * keeps writing. While cut off, the first answers what needs the database with DATABASE_UNAVAILABLE, what it serves
 * from memory as before, and /readyz with 503; once the relay is back it catches up with the other's writes.
 * Runs when TEST_DATABASE_URL is set.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { cutDataset } from '../support/fixtures.js';
import { TestPlatform } from '../support/http-platform.js';
import { TEST_DATABASES } from '../support/databases.js';

const postgres = TEST_DATABASES.find((database) => database.name === 'postgres');

/** A TCP relay to PostgreSQL that can be cut and restored on the same port. */
class Relay {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async cut(): Promise<void> {
    const closed = new Promise((resolve) => this.server!.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

const QUERY = 'query($h: [ID!], $u: ID) { recommendations(history: $h, userId: $u, first: 3) { items { item { id } } } }';
const ITEM = 'query($id: ID!) { item(id: $id) { id } }';
const UPSERT = 'mutation($items: [ItemInput!]!) { upsertItems(items: $items) { count } }';

describe('a replica while PostgreSQL is away', { skip: !postgres && 'TEST_DATABASE_URL is not set' }, () => {
  let relay: Relay;
  let direct: TestPlatform;
  let relayed: TestPlatform;
  let history: string[];

  before(async () => {
    const url = new URL((await postgres!.createUrl())!);
    relay = new Relay({ host: url.hostname, port: Number(url.port) });
    await relay.open();
    direct = await TestPlatform.start({ databaseUrl: url.toString() });
    await direct.load(await cutDataset('amazon-games', 20));
    const relayedUrl = new URL(url);
    relayedUrl.port = String(relay.port);
    relayed = await TestPlatform.start({ databaseUrl: relayedUrl.toString() });
    history = [...relayed.platform.catalog.items.values()].slice(0, 3).map((row) => row.id);
  });

  after(async () => {
    await relayed?.destroy();
    await direct?.destroy();
    await relay?.cut().catch(() => undefined);
  });

  it('answers DATABASE_UNAVAILABLE and 503 while cut off, serves from memory, and catches up when the database is back', async () => {
    const user = 'outage-user';
    await direct.mutate('mutation($e: [InteractionInput!]!) { recordInteractions(interactions: $e) { count } }', { e: history.map((itemId) => ({ userId: user, itemId })) });
    assert.equal((await relayed.query(QUERY, { u: user })).errors, undefined);

    await relay.cut();
    const byUser = await relayed.query(QUERY, { u: user });
    assert.equal(byUser.errors?.[0]?.extensions?.code, 'DATABASE_UNAVAILABLE', JSON.stringify(byUser.errors));
    const write = await relayed.mutate(UPSERT, { items: [{ id: 'outage:refused', domain: 'video_games', title: 'Refused While Away' }] });
    assert.equal(write.errors?.[0]?.extensions?.code, 'DATABASE_UNAVAILABLE', JSON.stringify(write.errors));
    assert.equal((await fetch(new URL('/readyz', relayed.url))).status, 503);
    // From memory and the vector index: a history's recommendations.
    assert.equal((await relayed.query(QUERY, { h: history })).data?.recommendations.items.length, 3);
    // The other replica writes meanwhile.
    await direct.mutate(UPSERT, { items: [{ id: 'outage:written', domain: 'video_games', title: 'Written While The Other Was Away' }] });

    await relay.open();
    const deadline = Date.now() + 15_000;
    for (;;) {
      const seen = (await relayed.query(ITEM, { id: 'outage:written' })).data?.item;
      if (seen) break;
      assert.ok(Date.now() < deadline, 'the write made meanwhile did not arrive within 15 s of the database coming back');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal((await fetch(new URL('/readyz', relayed.url))).status, 200);
    assert.equal((await relayed.query(QUERY, { u: user })).errors, undefined);
    // The refused write left nothing anywhere.
    assert.equal((await direct.query(ITEM, { id: 'outage:refused' })).data.item, null);
    assert.equal((await relayed.query(ITEM, { id: 'outage:refused' })).data.item, null);
  });
});
