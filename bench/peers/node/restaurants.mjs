// Restaurant namespaces and order routes of the Node peer (contract §6, §8): what
// scenario S4 uses, mirroring src/realtime/namespaces/restaurant.rs,
// src/realtime/orders.rs, src/http/restaurants.rs and src/store/orders.rs:
//   - `/`, `/restaurant` and `/restaurants/<id>` (joined to its board at connect), the
//     restaurant dialect, `join:restaurant` (leaves other restaurants' rooms, batch or
//     single mode) and `join:station`;
//   - `POST /api/restaurants`, `POST /api/restaurants/:id/orders` (one transaction:
//     order, items through unnest, the order read back with its items as JSON), then
//     `order:created` to the restaurant room and its stations' rooms on every restaurant
//     namespace, each socket once, and queued for sockets in batch mode.
// `orders:sync`, `order:update_status` and `table:complete` are not benchmarked and not
// implemented here (they answer "unknown event").
//
// Without the restaurant tables in the database (a Switchboard without restaurant
// support) nothing is mounted and the routes answer 404, so S4 reports "not available".

const STATIONS = ['kitchen', 'expo', 'bar', 'pos'];
const ORDER_TYPES = new Set(['dine_in', 'takeout', 'delivery', 'online']);
const BATCH_MS = Number(process.env.ORDER_BATCH_MS || 100);

export async function register(ctx) {
  const { io, pool, q, AppError, bad, notFound, forbidden, need, uuidField, uuidv7, iso, rank, isAdmin, log } = ctx;
  const present = await pool
    .query(
      "select to_regclass('public.restaurants') is not null and to_regclass('public.orders') is not null and to_regclass('public.order_items') is not null as ok",
    )
    .then((r) => r.rows[0].ok)
    .catch(() => false);
  if (!present) {
    log('no restaurant tables in the database: restaurant routes not mounted');
    return [];
  }

  // ------------------------------------------------------------------------------
  // Store

  function orderJson(r) {
    const o = { id: r.id, order_number: r.order_number, status: r.status, type: r.type };
    if (r.table_number != null) o.table_number = r.table_number;
    o.items = r.items.map((i) => {
      const item = { id: i.id, name: i.name, quantity: i.quantity, station: i.station };
      if (i.notes != null) item.notes = i.notes;
      return item;
    });
    o.total = r.total;
    o.created_at = iso(r.created_at);
    o.updated_at = iso(r.updated_at);
    o.restaurant_id = r.restaurant_id;
    return o;
  }

  const store = {
    async restaurantExists(id) {
      const r = await q('restaurant_exists', 'select exists (select 1 from restaurants where id = $1)', [id]);
      return r.rows[0].exists;
    },
    async insertRestaurant(id, name) {
      const r = await q(
        'insert_restaurant',
        'insert into restaurants (id, name) values ($1, $2) on conflict (id) do nothing returning id, name, created_at',
        [id ?? uuidv7(), name],
      );
      const row = r.rows[0];
      if (!row) throw bad('id: a restaurant with this id exists');
      return { id: row.id, name: row.name, created_at: iso(row.created_at) };
    },
    async insertOrder(restaurantId, o) {
      // Switchboard's one statement: order, items and the order as read back.
      const r = await pool.query({
        name: 'insert_order',
        text: `with i as (
            insert into order_items (id, order_id, position, name, quantity, station, notes)
            select t.id, $1, t.pos, t.name, t.quantity, t.station, t.notes
            from unnest($2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[]) with ordinality
                 as t(id, name, quantity, station, notes, pos)
            returning id, position, name, quantity, station, notes
          ), o as (
            insert into orders (id, restaurant_id, order_number, type, table_number, total)
            values ($1, $7, $8, $9, $10, $11::float8::numeric(12, 2))
            returning id, order_number, status, type, table_number, total, created_at, updated_at, restaurant_id
          )
          select o.id, o.order_number, o.status, o.type, o.table_number, o.total::float8 as total,
                 o.created_at, o.updated_at, o.restaurant_id,
                 coalesce((select json_agg(json_build_object('id', i.id, 'name', i.name, 'quantity', i.quantity,
                                                            'station', i.station, 'notes', i.notes) order by i.position)
                           from i), '[]'::json) as items
          from o`,
        values: [
          uuidv7(),
          o.items.map(() => uuidv7()),
          o.items.map((i) => i.name),
          o.items.map((i) => i.quantity),
          o.items.map((i) => i.station),
          o.items.map((i) => i.notes),
          restaurantId,
          o.order_number,
          o.type,
          o.table_number,
          o.total,
        ],
      });
      return orderJson(r.rows[0]);
    },
  };

  // ------------------------------------------------------------------------------
  // Rooms and fan-out (src/realtime/rooms.rs, src/realtime/orders.rs)

  const roomOf = (id) => `restaurant:${id}`;
  const stationRoom = (id, s) => `station:${id}:${s}`;
  const batched = (room) => `batch:${room}`;
  const splitBatched = (room) => (room.startsWith('batch:') ? [true, room.slice(6)] : [false, room]);
  const restaurantScoped = (room) => room.startsWith('restaurant:') || room.startsWith('station:');

  const plain = [io.of('/'), io.of('/restaurant')];
  const dynamic = io.of(/^\/restaurants\/[^/]+$/);
  /** Dynamic namespace paths seen per restaurant (as DynamicPaths). */
  const dynamicPaths = new Map();
  function record(restaurantId, path) {
    let paths = dynamicPaths.get(restaurantId);
    if (!paths) dynamicPaths.set(restaurantId, (paths = []));
    if (!paths.includes(path)) paths.push(path);
  }
  function namespaces(restaurantId) {
    const dyn = (dynamicPaths.get(restaurantId) ?? []).map((p) => io._nsps.get(p)).filter(Boolean);
    return [...plain, ...dyn];
  }

  function stationsOf(order) {
    return [...new Set(order.items.map((i) => i.station))].sort(
      (a, b) => STATIONS.indexOf(a) - STATIONS.indexOf(b),
    );
  }

  async function emitOrderEvent(restaurantId, stations, event, data) {
    const rooms = [roomOf(restaurantId), ...stations.map((s) => stationRoom(restaurantId, s))];
    const batchRooms = rooms.map(batched);
    const item = { event, data };
    for (const nsp of namespaces(restaurantId)) {
      nsp.to(rooms).emit(event, data);
      for (const socket of await nsp.in(batchRooms).fetchSockets()) {
        if (socket.data.batch) socket.data.batch.queue.push(item);
      }
    }
  }

  function setBatch(socket, on) {
    const b = socket.data.batch;
    const wasOn = b.enabled;
    b.enabled = on;
    if (wasOn && !on && b.queue.length) {
      socket.emit('orders:batch_update', b.queue.splice(0));
    }
    if (on && !b.timer) {
      b.timer = setInterval(() => {
        if (!socket.connected) {
          clearInterval(b.timer);
          b.timer = null;
          return;
        }
        if (b.queue.length) socket.emit('orders:batch_update', b.queue.splice(0));
        if (!b.enabled) {
          clearInterval(b.timer);
          b.timer = null;
        }
      }, BATCH_MS);
    }
  }

  function joinBoard(socket, restaurantId, batch) {
    const ownRoom = roomOf(restaurantId);
    const ownStations = `station:${restaurantId}:`;
    const variant = (base) => (batch ? batched(base) : base);
    for (const room of [...socket.rooms]) {
      const [isBatch, base] = splitBatched(room);
      if (!restaurantScoped(base)) continue;
      const own = base === ownRoom || base.startsWith(ownStations);
      if (!own) socket.leave(room);
      else if (isBatch !== batch) {
        socket.leave(room);
        socket.join(variant(base));
      }
    }
    socket.join(variant(ownRoom));
    return ownRoom;
  }

  // ------------------------------------------------------------------------------
  // Namespaces

  async function checkAccess(principal, restaurantId) {
    if (!isAdmin(principal) && !principal.restaurants.includes(restaurantId)) {
      throw forbidden('no access to this restaurant');
    }
    if (!(await store.restaurantExists(restaurantId))) throw new AppError('invalid_restaurant', 'restaurant not found');
  }

  function rememberNamespace(socket, restaurantId) {
    if (socket.nsp.name.startsWith('/restaurants/')) record(restaurantId, socket.nsp.name);
  }

  const decodeJoin = (p) => {
    if (typeof p === 'string') {
      const id = p.trim();
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
        throw bad('restaurantId: invalid UUID');
      }
      return { restaurantId: id.toLowerCase(), batch: false };
    }
    const o = need(p);
    return { restaurantId: uuidField(o, 'restaurantId'), batch: o.batch === true };
  };
  const decodeStation = (p) => {
    const o = need(p);
    const restaurantId = uuidField(o, 'restaurantId');
    if (!STATIONS.includes(o.station)) throw bad('station: unknown variant');
    return { restaurantId, station: o.station };
  };

  function registerHandlers(socket) {
    const me = socket.data.principal;
    socket.data.batch = { enabled: false, queue: [], timer: null };
    ctx.on(socket, 'restaurant', 'join:restaurant', decodeJoin, async (p) => {
      await checkAccess(me, p.restaurantId);
      rememberNamespace(socket, p.restaurantId);
      setBatch(socket, p.batch);
      return { room: joinBoard(socket, p.restaurantId, p.batch) };
    });
    ctx.on(socket, 'restaurant', 'join:station', decodeStation, async (p) => {
      await checkAccess(me, p.restaurantId);
      rememberNamespace(socket, p.restaurantId);
      const room = stationRoom(p.restaurantId, p.station);
      socket.join(socket.data.batch.enabled ? batched(room) : room);
      return { room };
    });
    ctx.onUnknown(socket, 'restaurant', new Set(['join:restaurant', 'join:station']));
  }

  function authenticate(socket) {
    const token = ctx.handshakeToken(socket);
    if (!token) throw new Error('AUTH_FAILED');
    try {
      socket.data.principal = ctx.verify(token);
    } catch {
      throw new Error('AUTH_FAILED');
    }
    socket.data.limiter = new ctx.RateLimiter();
  }

  for (const nsp of plain) {
    nsp.use((socket, next) => {
      try {
        authenticate(socket);
        registerHandlers(socket);
        next();
      } catch (e) {
        next(e);
      }
    });
  }
  dynamic.use(async (socket, next) => {
    try {
      authenticate(socket);
    } catch (e) {
      return next(e);
    }
    const raw = socket.nsp.name.slice('/restaurants/'.length);
    try {
      const id = uuidField({ id: raw }, 'id');
      await checkAccess(socket.data.principal, id);
      record(id, socket.nsp.name);
      joinBoard(socket, id, false);
      registerHandlers(socket);
      next();
    } catch (e) {
      const code = e instanceof AppError && e.kind === 'forbidden' ? 'PERMISSION_DENIED' : e instanceof AppError ? 'INVALID_RESTAURANT' : 'INTERNAL_ERROR';
      next(new Error(code));
    }
  });

  // ------------------------------------------------------------------------------
  // REST

  function decodeOrder(body) {
    const o = need(body);
    const str = (v, name) => {
      if (typeof v === 'number') return String(v);
      if (typeof v !== 'string') throw bad(`${name}: expected a string or a number`);
      return v.trim();
    };
    const order_number = str(o.order_number, 'order_number');
    const n = [...order_number].length;
    if (n < 1 || n > 50) throw bad('order_number: must be 1 to 50 characters');
    if (!ORDER_TYPES.has(o.type)) throw bad('type: unknown variant');
    const table_number = o.table_number == null ? null : str(o.table_number, 'table_number');
    if (!Array.isArray(o.items)) throw bad('items: invalid type: expected a sequence');
    if (o.items.length < 1 || o.items.length > 100) throw bad('items: must have 1 to 100 items');
    const items = o.items.map((it, i) => {
      const x = need(it);
      if (typeof x.name !== 'string') throw bad(`items[${i}].name: invalid type: expected a string`);
      const name = x.name.trim();
      if ([...name].length < 1 || [...name].length > 200) throw bad(`items[${i}].name: must be 1 to 200 characters`);
      if (!Number.isInteger(x.quantity) || x.quantity < 1 || x.quantity > 1000) {
        throw bad(`items[${i}].quantity: must be 1 to 1000`);
      }
      if (!STATIONS.includes(x.station)) throw bad(`items[${i}].station: unknown variant`);
      let notes = null;
      if (x.notes != null) {
        if (typeof x.notes !== 'string') throw bad(`items[${i}].notes: invalid type: expected a string`);
        notes = x.notes.trim() || null;
        if (notes && [...notes].length > 500) throw bad(`items[${i}].notes: must be at most 500 characters`);
      }
      return { name, quantity: x.quantity, station: x.station, notes };
    });
    if (typeof o.total !== 'number' || !Number.isFinite(o.total) || o.total < 0 || o.total > 9_999_999_999) {
      throw bad('total: must be a non-negative amount');
    }
    return { order_number, type: o.type, table_number, items, total: o.total };
  }

  return [
    [
      'POST',
      /^\/api\/restaurants$/,
      async (req) => {
        const me = ctx.authenticate(req);
        if (!ctx.isServiceOrAdmin(me)) throw forbidden('only service or admin tokens may call this route');
        const body = need(await ctx.readJson(req));
        const id = body.id == null ? null : uuidField(body, 'id');
        if (typeof body.name !== 'string') throw bad('name: invalid type: expected a string');
        const name = body.name.trim();
        if ([...name].length < 1 || [...name].length > 200) throw bad('name: must be 1 to 200 characters');
        return [201, await store.insertRestaurant(id, name)];
      },
    ],
    [
      'POST',
      /^\/api\/restaurants\/([^/]+)\/orders$/,
      async (req, m) => {
        const me = ctx.authenticate(req);
        const raw = m[1];
        if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(raw)) throw bad('id: not a UUID');
        const restaurantId = raw.toLowerCase();
        const anywhere = me.roles.includes('service') || isAdmin(me);
        const member = me.restaurants.includes(restaurantId) && rank(me) >= 1;
        if (!(anywhere || member)) throw forbidden('not allowed for this restaurant');
        if (!(await store.restaurantExists(restaurantId))) throw notFound('restaurant not found');
        const order = await store.insertOrder(restaurantId, decodeOrder(await ctx.readJson(req)));
        await emitOrderEvent(restaurantId, stationsOf(order), 'order:created', order);
        return [201, order];
      },
    ],
  ];
}
