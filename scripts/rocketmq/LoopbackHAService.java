package rmqtx.rocketmq;

import java.io.IOException;
import java.lang.reflect.Field;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.ha.DefaultHAService;

/**
 * RocketMQ's default HA service (master-to-replica replication), listening on loopback only.
 *
 * <p>For the local servers of scripts/infra-up.sh, which must not be reachable from other machines.
 * The broker's client ports follow its bindAddress, but in RocketMQ 5.3.3 the HA port
 * (haListenPort, listenPort + 1 by default) is bound in DefaultHAService.AcceptSocketService with
 * {@code new InetSocketAddress(haListenPort)}, the wildcard address, and no setting changes that.
 * A replica connecting there is sent the commit log, i.e. every message. The broker loads its HA
 * service through ServiceProvider (META-INF/service/org.apache.rocketmq.store.ha.HAService), which
 * infra-up.sh points at this class. It is the default service with one change: the address the
 * accept service binds, set before the service starts.
 */
public class LoopbackHAService extends DefaultHAService {
    @Override
    public void init(DefaultMessageStore store) throws IOException {
        super.init(store);
        int port = store.getMessageStoreConfig().getHaListenPort();
        try {
            Class<?> accept = Class.forName(DefaultHAService.class.getName() + "$AcceptSocketService");
            Field listen = accept.getDeclaredField("socketAddressListen");
            listen.setAccessible(true);
            listen.set(this.acceptSocketService, new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
        } catch (ReflectiveOperationException e) {
            // A RocketMQ version with another layout: refuse to start rather than listen everywhere.
            throw new IOException("cannot bind the HA service to loopback in this RocketMQ version", e);
        }
    }
}
