import MCPSessionStorage

extension MCPServer {
    /// Records activity, until cancelled, for every session this instance is serving right now
    /// (a call running, a stream open), so a session in use never expires however long the call
    /// or stream lasts. Touches are throttled by the storage (``SessionPolicy/activityWriteInterval``),
    /// so this writes at most once per interval per session.
    func keepSessionsInUseAlive() async {
        let interval = max(.milliseconds(100), storage.policy.activityWriteInterval / 2)
        while (try? await Task.sleep(for: interval)) != nil {
            for id in calls.sessions.union(hub.openSessions) {
                do {
                    try await storage.touchSession(id)
                } catch  where error.code == .sessionNotFound {
                    hub.close(id)
                } catch {
                    logger.debug("could not record activity", metadata: ["session": "\(id)", "error": "\(error)"])
                }
            }
        }
    }
}
