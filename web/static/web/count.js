// A tweet's length as the server counts it (tweets/text.py: twitter-text's v3 rules), so the
// compose counter and the server never disagree: NFC, one line ending, every URL weighs
// `url_weight`, an emoji `default_weight`, and every other character its range's weight. The
// URLs and emoji are found with the server's own regular expressions, which it serves at the
// page config's `counting_rules_url`, and the URL checks after a match are the server's too.

function idnaValid(domain) {
  // As Python's "idna" codec: every label 1 to 63 characters once punycoded.
  let host;
  try {
    host = new URL(`http://${domain}/`).hostname;
  } catch {
    return false;
  }
  return host.split(".").every((label, i, labels) => (label.length > 0 || i === labels.length - 1)
    && label.length <= 63);
}

function urlRanges(text, rules, expressions) {
  if (!text.includes(".")) return [];
  const ranges = [];
  for (const match of text.matchAll(expressions.url)) {
    const [, , before, url, protocol, domain, , path] = match;
    const end = match.index + match[0].length;
    const start = end - url.length;
    if (!idnaValid(domain) || (protocol || "https://").length + url.length > rules.url_max_length) continue;
    if (protocol) {
      // A t.co link counts without what follows its slug (and not at all with a longer slug).
      const tco = url.match(expressions.tco);
      if (tco) {
        if (tco[1] && tco[1].length > rules.tco_slug_max_length) continue;
        ranges.push([start, start + tco[0].length]);
      } else {
        ranges.push([start, end]);
      }
      continue;
    }
    // Without a protocol only ASCII domains count, and not after "-", "_", "." or "/".
    if (expressions.invalidBefore.test(before || "")) continue;
    let last = null;
    for (const ascii of domain.matchAll(expressions.asciiDomain)) {
      last = [start + ascii.index, start + ascii.index + ascii[0].length];
      ranges.push(last);
    }
    if (last && path) last[1] = end;
  }
  return ranges;
}

function characterWeight(codePoint, rules) {
  for (const [start, end, weight] of rules.ranges) {
    if (codePoint >= start && codePoint <= end) return weight;
  }
  return rules.default_weight;
}

/** A function counting a text's weighted length under `rules` (the server's counting rules). */
export function makeCounter(rules) {
  const expressions = {
    url: new RegExp(rules.url, "gi"),
    invalidBefore: new RegExp(rules.url_invalid_before),
    asciiDomain: new RegExp(rules.ascii_domain, "gi"),
    tco: new RegExp(rules.tco, "i"),
    emoji: new RegExp(rules.emoji, "gu"),
  };

  return function weightedLength(raw) {
    const text = raw.normalize("NFC").replace(/\r\n|\r/g, "\n");
    const urls = new Map(urlRanges(text, rules, expressions));
    const emoji = new Map([...text.matchAll(expressions.emoji)].map((m) => [m.index, m.index + m[0].length]));
    let weight = 0;
    for (let i = 0; i < text.length;) {
      if (urls.has(i)) {
        weight += rules.url_weight * rules.scale;
        i = urls.get(i);
      } else if (emoji.has(i)) {
        weight += rules.default_weight;
        i = emoji.get(i);
      } else {
        const codePoint = text.codePointAt(i);
        weight += characterWeight(codePoint, rules);
        i += codePoint > 0xffff ? 2 : 1;
      }
    }
    return Math.floor(weight / rules.scale);
  };
}

let loading = null;

/** The server's counting rules, fetched once (a versioned, long-cached URL). */
export function countingRules(url) {
  loading ??= fetch(url).then((response) => {
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }).catch((error) => {
    loading = null;
    throw error;
  });
  return loading;
}
