"""See what the network does: the live map, the DNS query log's reader, propagation traces."""
