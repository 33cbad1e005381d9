/** `npm run recommend -- <item ids...>`: asks a running platform for recommendations after a history and prints them. */
import { Command } from 'commander';
import { graphqlRequest } from './graphql-client.js';

const program = new Command('recommend')
  .description('Print recommendations for a history of item ids (oldest first)')
  .argument('<ids...>', 'item ids of the history, most recent last')
  .option('--url <url>', 'GraphQL endpoint', `http://127.0.0.1:${process.env.PORT ?? 4000}/graphql`)
  .option('--domain <domain>', 'domain to recommend from (default: that of the most recent item)')
  .option('--first <n>', 'how many', '10')
  .parse();

const options = program.opts<{ url: string; domain?: string; first: string }>();
const QUERY = `query Recommend($history: [ID!]!, $domain: String, $first: Int!) {
  items(ids: $history) { id title }
  recommendations(history: $history, domain: $domain, first: $first) {
    modelVersion domain items { score item { id title } }
  }
}`;

interface Result {
  items: ({ id: string; title: string } | null)[];
  recommendations: { modelVersion: string; domain: string; items: { score: number; item: { id: string; title: string } }[] };
}

try {
  const data = await graphqlRequest<Result>(options.url, QUERY, {
    history: program.args, domain: options.domain, first: Number(options.first),
  });
  console.log('history:');
  for (const item of data.items) console.log(`  ${item?.id.padEnd(22)} ${item?.title}`);
  console.log(`recommended in ${data.recommendations.domain} by model ${data.recommendations.modelVersion}:`);
  for (const { score, item } of data.recommendations.items) {
    console.log(`  ${score.toFixed(4).padStart(9)}  ${item.id.padEnd(22)} ${item.title}`);
  }
} catch (error) {
  console.error(`recommend failed: ${(error as Error).message}`);
  process.exit(1);
}
