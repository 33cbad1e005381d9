/** An item as the catalogue stores it: a row of the items table. */
export interface CatalogItem {
  id: string;
  domain: string;
  title: string;
  attributes: Record<string, unknown>;
}

export function toCatalogItem(row: { id: string; domain: string; title: string; attributes: unknown }): CatalogItem {
  return { id: row.id, domain: row.domain, title: row.title, attributes: row.attributes as Record<string, unknown> };
}
