/**
 * NATS subjects, all scoped by federation, and the permissions each role gets on them.
 *
 * Who sends and who receives is in the subject: a message to the director ends with its sender's name, a
 * message to an envoy or a data scientist carries the receiver's name, and a blob subject names its owner and
 * its one receiver. That lets the NATS server pin every identity to its own subjects (`permissionsFor`,
 * written into the server config by `secflow provision`), and lets a receiver check that the subject it read
 * a message on names the sender the signature proves. Both live here so they cannot drift apart.
 */
const root = (f: string) => `secflow.${f}`;

export const subjects = {
  // Envoys and data scientists to the director: the last token is the sender.
  register: (f: string, envoy: string) => `${root(f)}.director.register.${envoy}`,
  heartbeat: (f: string, envoy: string) => `${root(f)}.director.heartbeat.${envoy}`,
  leave: (f: string, envoy: string) => `${root(f)}.director.leave.${envoy}`,
  submit: (f: string, scientist: string) => `${root(f)}.director.submit.${scientist}`,
  status: (f: string, scientist: string) => `${root(f)}.director.status.${scientist}`,
  // The director to one envoy.
  envoyTask: (f: string, envoy: string) => `${root(f)}.envoy.${envoy}.task`,
  envoySecAgg: (f: string, envoy: string) => `${root(f)}.envoy.${envoy}.secagg`,
  // The director to one data scientist following an experiment.
  events: (f: string, experiment: string, scientist: string) => `${root(f)}.exp.${experiment}.events.${scientist}`,
  // Envoys to the director within one run of an experiment: the last token is the sender.
  results: (f: string, experiment: string, runId: string, envoy: string) => `${root(f)}.exp.${experiment}.${runId}.results.${envoy}`,
  secaggUploads: (f: string, experiment: string, runId: string, envoy: string) => `${root(f)}.exp.${experiment}.${runId}.secagg.${envoy}`,
  // A blob's owner answers chunk requests from its one receiver.
  blob: (f: string, owner: string, receiver: string, id: string) => `${root(f)}.blob.${owner}.${receiver}.${id}`,
  /** Replies to a participant's requests: only it may subscribe here. */
  inbox: (name: string) => `_INBOX.${name}`,
};

/** The last token of a subject: the sender, on subjects that end with one. */
export function lastToken(subject: string): string {
  return subject.slice(subject.lastIndexOf('.') + 1);
}

export interface SubjectPermissions {
  publish: string[];
  subscribe: string[];
  /** May answer requests it received (reply subjects are other participants' inboxes). */
  allowResponses: boolean;
}

/**
 * What one identity may do on the server: its own subjects and nothing else. `director` is the name of the
 * federation's director (blob subjects name it).
 */
export function permissionsFor(f: string, role: 'director' | 'envoy' | 'scientist', name: string, director: string): SubjectPermissions {
  const r = root(f);
  switch (role) {
    case 'director':
      return {
        publish: [`${r}.envoy.*.task`, `${r}.envoy.*.secagg`, `${r}.exp.*.events.*`, `${r}.blob.*.${name}.*`],
        subscribe: [`${r}.director.*.*`, `${r}.exp.*.*.results.*`, `${r}.exp.*.*.secagg.*`, `${r}.blob.${name}.*.*`, `${subjects.inbox(name)}.>`],
        allowResponses: true,
      };
    case 'envoy':
      return {
        publish: [`${r}.director.register.${name}`, `${r}.director.heartbeat.${name}`, `${r}.director.leave.${name}`,
          `${r}.exp.*.*.results.${name}`, `${r}.exp.*.*.secagg.${name}`, `${r}.blob.${director}.${name}.*`],
        subscribe: [`${r}.envoy.${name}.*`, `${r}.blob.${name}.${director}.*`, `${subjects.inbox(name)}.>`],
        allowResponses: true,
      };
    case 'scientist':
      return {
        publish: [`${r}.director.submit.${name}`, `${r}.director.status.${name}`],
        subscribe: [`${r}.exp.*.events.${name}`, `${subjects.inbox(name)}.>`],
        allowResponses: false,
      };
  }
}
