// The Lua scripts every write (and every multi-step read) runs as one atomic step on the server
// (`EVALSHA`). Each touches only the keys of one session, which share one hash tag, so a session
// lives in one Redis Cluster slot.
//
// KEYS, in every script: 1 the session hash (`c` created, `a` last activity, `i` initialized,
// `p` protocol version, `ci`/`cc`/`sc` client info and capabilities, server capabilities, `m`
// metadata, `v` version, `b` state bytes, `e` last event id, `f` first event id kept), 2 the state
// hash (key → JSON), 3 the events hash (id → encoded event), 4 the stream index (a sorted set of
// `<stream>\0<id, 20 digits>`, read by lexical range), 5 the leases hash (name → `holder\0generation`).
//
// Every write refreshes the keys' expiry (`PEXPIRE`, twice the session TTL): Redis's own expiry
// backs up the cleanup service, never ahead of it. A write's change message, when it sends one,
// is `PUBLISH`ed last, after every check and every write: the script is atomic, so the message
// goes out if and only if the write happened.
enum RedisScripts {
    /// Shared functions, prepended to every script.
    static let prelude = #"""
        local function expire(ttl)
          for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
        end
        local function publish(channel, message)
          if channel ~= '' and message ~= '' then redis.call('PUBLISH', channel, message) end
        end
        local function hsetFrom(key, values, first)
          -- In slices: unpack() of a long list would overflow Lua's stack.
          local i = first
          while i <= #values do
            local last = math.min(#values, i + 999)
            redis.call('HSET', key, unpack(values, i, last))
            i = last + 1
          end
        end
        local function member(stream, id)
          return stream .. '\0' .. string.format('%020d', id)
        end
        local function streamOf(encoded)
          local colon = string.find(encoded, ':', 1, true)
          local length = tonumber(string.sub(encoded, 1, colon - 1))
          return string.sub(encoded, colon + 1, colon + length)
        end
        local function drop(id)
          local encoded = redis.call('HGET', KEYS[3], id)
          if encoded then
            redis.call('ZREM', KEYS[4], member(streamOf(encoded), id))
            redis.call('HDEL', KEYS[3], id)
          end
        end
        -- The events `ids` that are still kept, as `id, encoded, id, encoded, …`.
        local function eventsWithIDs(ids)
          local values = redis.call('HMGET', KEYS[3], unpack(ids))
          local out = {}
          for i, id in ipairs(ids) do
            if values[i] then
              out[#out + 1] = id
              out[#out + 1] = values[i]
            end
          end
          return out
        end
        local function fetch(stream, after, limit)
          local members = redis.call('ZRANGEBYLEX', KEYS[4], '(' .. member(stream, after), '(' .. stream .. '\1', 'LIMIT', 0, limit)
          if #members == 0 then return {} end
          local ids = {}
          for i, m in ipairs(members) do ids[i] = tonumber(string.sub(m, -20)) end
          return eventsWithIDs(ids)
        end
        local function setOptional(fields, deleted, name, value)
          if value == '' then deleted[#deleted + 1] = name else
            fields[#fields + 1] = name
            fields[#fields + 1] = value
          end
        end

        """#

    /// ARGV: created, initialized, protocol, client info, client capabilities, server
    /// capabilities, metadata, state bytes, TTL ms, channel, message, then state key/value pairs.
    /// Returns 1, or 0 if the id is taken.
    static let create = RedisScript(
        "create",
        prelude + #"""
            if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
            local fields = {'c', ARGV[1], 'a', ARGV[1], 'i', ARGV[2], 'm', ARGV[7], 'v', 1, 'b', ARGV[8], 'e', 0, 'f', 1}
            local unused = {}
            setOptional(fields, unused, 'p', ARGV[3])
            setOptional(fields, unused, 'ci', ARGV[4])
            setOptional(fields, unused, 'cc', ARGV[5])
            setOptional(fields, unused, 'sc', ARGV[6])
            redis.call('HSET', KEYS[1], unpack(fields))
            hsetFrom(KEYS[2], ARGV, 12)
            expire(ARGV[9])
            publish(ARGV[10], ARGV[11])
            return 1
            """#)

    /// Returns `[session fields, state fields]` (flat name/value lists), or nil.
    static let get = RedisScript(
        "get",
        prelude + #"""
            local session = redis.call('HGETALL', KEYS[1])
            if #session == 0 then return false end
            return {session, redis.call('HGETALL', KEYS[2])}
            """#)

    /// ARGV: expected version, now, initialized, protocol, client info, client capabilities,
    /// server capabilities, metadata, state bytes, TTL ms, channel, message prefix, message
    /// suffix, then state key/value pairs. Returns `[new version, created]`, -1 (no session) or
    /// -2 (another version).
    static let update = RedisScript(
        "update",
        prelude + #"""
            local version = redis.call('HGET', KEYS[1], 'v')
            if not version then return -1 end
            if tonumber(version) ~= tonumber(ARGV[1]) then return -2 end
            local nextVersion = tonumber(version) + 1
            local fields = {'a', ARGV[2], 'i', ARGV[3], 'm', ARGV[8], 'b', ARGV[9], 'v', nextVersion}
            local deleted = {}
            setOptional(fields, deleted, 'p', ARGV[4])
            setOptional(fields, deleted, 'ci', ARGV[5])
            setOptional(fields, deleted, 'cc', ARGV[6])
            setOptional(fields, deleted, 'sc', ARGV[7])
            redis.call('HSET', KEYS[1], unpack(fields))
            if #deleted > 0 then redis.call('HDEL', KEYS[1], unpack(deleted)) end
            redis.call('DEL', KEYS[2])
            hsetFrom(KEYS[2], ARGV, 14)
            expire(ARGV[10])
            publish(ARGV[11], ARGV[12] .. nextVersion .. ARGV[13])
            return {nextVersion, redis.call('HGET', KEYS[1], 'c')}
            """#)

    /// ARGV: now, write only if the stored activity is before this, TTL ms. Returns 1, or 0 (no session).
    static let touch = RedisScript(
        "touch",
        prelude + #"""
            local activity = redis.call('HGET', KEYS[1], 'a')
            if not activity then return 0 end
            if tonumber(activity) < tonumber(ARGV[2]) then
              redis.call('HSET', KEYS[1], 'a', ARGV[1])
              expire(ARGV[3])
            end
            return 1
            """#)

    /// ARGV: channel, message. Returns 1 if the session existed.
    static let delete = RedisScript(
        "delete",
        prelude + #"""
            if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
            redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
            publish(ARGV[1], ARGV[2])
            return 1
            """#)

    /// ARGV: key. Returns the value, nil (key not set) or -1 (no session).
    static let stateValue = RedisScript(
        "state-value",
        prelude + #"""
            local value = redis.call('HGET', KEYS[2], ARGV[1])
            if value then return value end
            if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
            return false
            """#)

    /// ARGV: key, value JSON, now, state limit, TTL ms, channel, message prefix, message suffix.
    /// Returns the new version, -1 (no session) or -2 (past the limit). A value's JSON is never
    /// empty, so a zero `HSTRLEN` means the key is not set.
    static let setState = RedisScript(
        "set-state",
        prelude + #"""
            local bytes = redis.call('HGET', KEYS[1], 'b')
            if not bytes then return -1 end
            local old = redis.call('HSTRLEN', KEYS[2], ARGV[1])
            if old > 0 then old = old + #ARGV[1] end
            local total = tonumber(bytes) - old + #ARGV[1] + #ARGV[2]
            if total > tonumber(ARGV[4]) then return -2 end
            redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
            local version = redis.call('HINCRBY', KEYS[1], 'v', 1)
            redis.call('HSET', KEYS[1], 'b', total, 'a', ARGV[3])
            expire(ARGV[5])
            publish(ARGV[6], ARGV[7] .. version .. ARGV[8])
            return version
            """#)

    /// ARGV: key, now, TTL ms, channel, message prefix, message suffix. Returns the new version or -1.
    static let removeState = RedisScript(
        "remove-state",
        prelude + #"""
            local bytes = redis.call('HGET', KEYS[1], 'b')
            if not bytes then return -1 end
            local old = redis.call('HSTRLEN', KEYS[2], ARGV[1])
            if old > 0 then
              redis.call('HDEL', KEYS[2], ARGV[1])
              redis.call('HSET', KEYS[1], 'b', tonumber(bytes) - old - #ARGV[1])
            end
            local version = redis.call('HINCRBY', KEYS[1], 'v', 1)
            redis.call('HSET', KEYS[1], 'a', ARGV[2])
            expire(ARGV[3])
            publish(ARGV[4], ARGV[5] .. version .. ARGV[6])
            return version
            """#)

    /// ARGV: stream, encoded event, now, events kept, TTL ms, channel, message prefix, message
    /// suffix. Takes the next id, stores the event and indexes it by stream, trims the oldest
    /// past the limit. Returns the event id, or -1 (no session).
    static let appendEvent = RedisScript(
        "append-event",
        prelude + #"""
            if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
            local id = redis.call('HINCRBY', KEYS[1], 'e', 1)
            redis.call('HSET', KEYS[3], id, ARGV[2])
            redis.call('ZADD', KEYS[4], 0, member(ARGV[1], id))
            local first = tonumber(redis.call('HGET', KEYS[1], 'f') or 1)
            local kept = first
            while kept <= id - tonumber(ARGV[4]) do
              drop(kept)
              kept = kept + 1
            end
            redis.call('HSET', KEYS[1], 'a', ARGV[3], 'f', kept)
            expire(ARGV[5])
            publish(ARGV[6], ARGV[7] .. id .. ARGV[8])
            return id
            """#)

    /// ARGV: cursor event id, limit (-1: all). The events after the cursor on its own stream, as
    /// `[id, encoded, id, encoded, …]`; -1 if there is no session.
    static let eventsAfter = RedisScript(
        "events-after",
        prelude + #"""
            local cursor = redis.call('HGET', KEYS[3], ARGV[1])
            if not cursor then
              if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
              return {}
            end
            return fetch(streamOf(cursor), tonumber(ARGV[1]), ARGV[2])
            """#)

    /// ARGV: stream, after this id, limit (-1: all). As `eventsAfter`.
    static let streamEventsAfter = RedisScript(
        "stream-events-after",
        prelude + #"""
            local events = fetch(ARGV[1], tonumber(ARGV[2]), ARGV[3])
            if #events == 0 and redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
            return events
            """#)

    /// ARGV: event id. Returns the encoded event, nil, or -1 (no session).
    static let event = RedisScript(
        "event",
        prelude + #"""
            local encoded = redis.call('HGET', KEYS[3], ARGV[1])
            if encoded then return encoded end
            if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
            return false
            """#)

    /// ARGV: limit. The newest events, oldest first, as `eventsAfter`; -1 if there is no session.
    static let recentEvents = RedisScript(
        "recent-events",
        prelude + #"""
            local bounds = redis.call('HMGET', KEYS[1], 'e', 'f')
            if not bounds[1] then return -1 end
            local last, first = tonumber(bounds[1]), tonumber(bounds[2])
            local from = math.max(first, last - tonumber(ARGV[1]) + 1)
            if from > last then return {} end
            local ids = {}
            for id = from, last do ids[#ids + 1] = id end
            return eventsWithIDs(ids)
            """#)

    /// ARGV: delete the events below this id, channel, message. Returns how many went, or -1.
    static let deleteEvents = RedisScript(
        "delete-events",
        prelude + #"""
            local bounds = redis.call('HMGET', KEYS[1], 'e', 'f')
            if not bounds[1] then return -1 end
            local last, first = tonumber(bounds[1]), tonumber(bounds[2])
            local before = math.min(tonumber(ARGV[1]), last + 1)
            local count = 0
            for id = first, before - 1 do
              if redis.call('HEXISTS', KEYS[3], id) == 1 then count = count + 1 end
              drop(id)
            end
            if before > first then redis.call('HSET', KEYS[1], 'f', before) end
            publish(ARGV[2], ARGV[3])
            return count
            """#)

    /// ARGV: name. Returns `holder\0generation`, nil, or -1 (no session).
    static let lease = RedisScript(
        "lease",
        prelude + #"""
            local lease = redis.call('HGET', KEYS[5], ARGV[1])
            if lease then return lease end
            if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
            return false
            """#)

    /// ARGV: name, expected (`holder\0generation`, or empty: none held), new (the same, or
    /// empty: release), TTL ms. Returns 1 if it swapped, 0 if not, -1 (no session).
    static let swapLease = RedisScript(
        "swap-lease",
        prelude + #"""
            if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
            local held = redis.call('HGET', KEYS[5], ARGV[1]) or ''
            if held ~= ARGV[2] then return 0 end
            if ARGV[3] == '' then
              redis.call('HDEL', KEYS[5], ARGV[1])
            else
              redis.call('HSET', KEYS[5], ARGV[1], ARGV[3])
              redis.call('PEXPIRE', KEYS[5], ARGV[4])
            end
            return 1
            """#)

    /// ARGV: cutoff, channel, message. Deletes the session if it was last active before the
    /// cutoff: returns 1; its activity (a string) if not; -1 if it is gone already.
    static let expire = RedisScript(
        "expire",
        prelude + #"""
            local activity = redis.call('HGET', KEYS[1], 'a')
            if not activity then return -1 end
            if tonumber(activity) >= tonumber(ARGV[1]) then return activity end
            redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
            publish(ARGV[2], ARGV[3])
            return 1
            """#)

    /// Every script, to load ahead (and for the benchmark's command lines).
    static let all = [
        create, get, update, touch, delete, stateValue, setState, removeState, appendEvent, eventsAfter, streamEventsAfter, event,
        recentEvents, deleteEvents, lease, swapLease, expire,
    ]
}
