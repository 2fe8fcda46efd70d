/**
 * The NBD client: {@link io.qcow4j.nbd.client.NbdClient} connects to an export
 * ({@link io.qcow4j.nbd.client.NbdUri}: {@code nbd+unix:///EXPORT?socket=PATH},
 * {@code nbd://HOST:PORT/EXPORT}, {@code nbds://...} with TLS), negotiates structured replies and
 * meta contexts, and is a {@link io.qcow4j.core.api.BlockDevice} with writes, zeroes, trim, flush
 * and the extents of any meta context. Everything else here is its machinery: the handshake,
 * the transmission phase (requests in flight, replies matched by cookie and checked), TLS over
 * the JDK's SSLEngine.
 */
package io.qcow4j.nbd.client;
