import type { ProtocolError } from '../protocol/messages';

/** An error as the user reads it: what happened, then what to do. Text only, never HTML. */
export function ErrorNotice({ error, title }: { error: ProtocolError; title: string }) {
  return (
    <div className="notice error" role="alert">
      <strong>{title}</strong>
      <p className="message">{error.message}</p>
      {error.hint ? <p className="hint">{error.hint}</p> : null}
      <p className="code">
        Error code: <code>{error.code}</code>
      </p>
    </div>
  );
}
