import type { Command } from 'commander';

/**
 * `virtops dashboard --kubeconfig F`: the login link of the controller's web dashboard
 * (`virtops controller --dashboard-listen`). The token is in Secret virtops-dashboard of the
 * controller's namespace, so the API server's RBAC decides who may sign in: reading that
 * Secret is the permission. The link carries the token in its fragment (never sent to a server).
 */
export function registerDashboard(program: Command): void {
  program
    .command('dashboard')
    .description("print the login link of the cluster controller's web dashboard (reads Secret virtops-dashboard with your kubeconfig's credentials)")
    .option('--kubeconfig <file>', 'kubeconfig of the cluster (default: $KUBECONFIG)')
    .option('--context <name>', 'kubeconfig context (default: its current-context)')
    .option('--controller-namespace <ns>', 'namespace of virtops controller', 'virtops-system')
    .option('--url <url>', "the dashboard's address as your browser reaches it (default: the one the controller recorded on the Secret)")
    .action(async (opts: { kubeconfig?: string; context?: string; controllerNamespace: string; url?: string }) => {
      const paths = opts.kubeconfig ? [opts.kubeconfig] : (process.env['KUBECONFIG'] ?? '').split(':').filter(Boolean);
      if (!paths.length) throw new Error('--kubeconfig is required (or set $KUBECONFIG): the login token is read from the cluster');
      const { KubeRest, KubeApiError } = await import('../kube-rest.js');
      const kube = await KubeRest.connect(paths, opts.context ? { context: opts.context } : {});
      const ns = opts.controllerNamespace;
      const secret = await kube.get<{ metadata: { annotations?: Record<string, string> }; data?: Record<string, string> }>(`/api/v1/namespaces/${encodeURIComponent(ns)}/secrets/virtops-dashboard`).catch((err: unknown) => {
        if (err instanceof KubeApiError && err.code === 403) throw new Error(`${err.message} (signing in to the dashboard needs RBAC "get" on Secret ${ns}/virtops-dashboard)`);
        throw err;
      });
      if (!secret?.data?.['token']) throw new Error(`Secret ${ns}/virtops-dashboard not found: start virtops controller with --dashboard-listen HOST:PORT (it creates the Secret), or pass --controller-namespace`);
      const url = (opts.url ?? secret.metadata.annotations?.['virtops.io/dashboard-url'])?.replace(/\/+$/, '');
      if (!url) throw new Error('the controller recorded no dashboard URL on the Secret: pass --url http://HOST:PORT (its --dashboard-listen address as your browser reaches it)');
      if (!/^https?:\/\/[^/]+$/.test(url)) throw new Error(`--url "${url}" is not http(s)://HOST:PORT`);
      const token = Buffer.from(secret.data['token'], 'base64').toString('utf8');
      process.stderr.write('virtops dashboard: the link holds the login token: keep it private\n');
      process.stdout.write(`${url}/login#token=${token}\n`);
    });
}
