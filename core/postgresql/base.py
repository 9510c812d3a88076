"""Django's PostgreSQL backend, with a health check that costs no round trip when the connection is fine.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first query of every request that reuses
a connection: one more round trip to the database on every request, about a tenth of a DICOMweb frame
request. A server that drops an idle connection (restart, failover, idle timeout, a terminated backend)
says so before it goes — an error message, then the end of the stream — so the socket of a dropped idle
connection has something to read, and that of a healthy one has nothing. Only a connection whose socket
has something to read, or that is not idle, gets Django's full check.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if self._idle_with_nothing_to_read():
            self.health_check_done = True
            return
        super().close_if_health_check_failed()  # SELECT 1; reconnects if that fails

    def _idle_with_nothing_to_read(self) -> bool:
        connection = self.connection
        if connection.closed or connection.broken:
            return False
        pgconn = connection.pgconn
        if pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return False
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        return not poller.poll(0)
