// hiredis (Debian's libhiredis-dev, 0.14.1 on Debian 12: RESP2, no TLS): the RESP codec
// (redisFormatCommandArgv, redisReader) that MCPSessionStorageRedis runs over SwiftNIO.
#include <hiredis/hiredis.h>
