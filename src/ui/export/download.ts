// Hands bytes made by the worker to the browser as a file download (Blob + object URL + a download anchor).

export function downloadBytes(bytes: Uint8Array, filename: string, mimeType: string): void {
  const blob = new Blob([bytes as Uint8Array<ArrayBuffer>], { type: mimeType });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The download has started from the URL by now; give slow browsers a minute before freeing it.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
